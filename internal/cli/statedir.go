package cli

import (
	"path/filepath"
)

// stateDirName is the directory mtev-supervise keeps under the XDG state
// home.
const stateDirName = "mtev-supervise"

// stateDir resolves the state directory: the --state-dir flag value, else
// $MTEV_STATE_DIR, else $XDG_STATE_HOME/mtev-supervise, else
// $HOME/.local/state/mtev-supervise. A relative $XDG_STATE_HOME is ignored,
// as the XDG base directory specification requires. It fails with a usage
// error when none of them is set.
func stateDir(env *Env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if d := env.Getenv("MTEV_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := env.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, stateDirName), nil
	}
	if h := env.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", stateDirName), nil
	}
	return "", usageError("no state directory: set --state-dir, $MTEV_STATE_DIR, $XDG_STATE_HOME or $HOME")
}
