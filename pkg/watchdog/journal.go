package watchdog

import (
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
)

// openJournal opens the incident journal of the state directory. The
// repairs the journal makes on opening (and later, after another process
// left damage) are reported through warn.
func openJournal(c Config, warn func(error)) (Appender, error) {
	return journal.Open(JournalDir(c.StateDir), journal.Options{
		MaxBytes: c.JournalMaxBytes,
		MaxAge:   c.JournalMaxAge,
		OnRepair: func(d journal.Damage, repair string) {
			warn(fmt.Errorf("watchdog: journal repaired: %s: %s", d, repair))
		},
	})
}
