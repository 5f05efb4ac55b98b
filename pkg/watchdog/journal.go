package watchdog

import "github.com/mtev-supervise/mtev-supervise/pkg/journal"

// openJournal opens the incident journal of the state directory.
func openJournal(c Config) (Appender, error) {
	return journal.Open(JournalDir(c.StateDir), journal.Options{MaxBytes: c.JournalMaxBytes, MaxAge: c.JournalMaxAge})
}
