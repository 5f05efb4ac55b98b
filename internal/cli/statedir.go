package cli

import (
	"github.com/mtev-supervise/mtev-supervise/pkg/watchdog"
)

// stateDir resolves the state directory: the --state-dir flag value, else
// $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise, else
// $HOME/.local/state/mtev-supervise. A relative $XDG_STATE_HOME is ignored,
// as the XDG base directory specification requires. It fails with a usage
// error when none of them is set.
func stateDir(env *Env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if d := watchdog.DefaultStateDir(env.Getenv); d != "" {
		return d, nil
	}
	return "", usageError("no state directory: set --state-dir, $MTEV_STATE_DIR, $XDG_STATE_HOME or $HOME")
}
