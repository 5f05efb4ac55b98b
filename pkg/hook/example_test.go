package hook_test

import (
	"fmt"

	"github.com/mtev-supervise/mtev-supervise/pkg/hook"
)

func Example() {
	logLine := hook.New[string]("example_log_line", "a line is about to be written")
	logLine.Register("redact", func(s string) hook.Result {
		if s == "secret" {
			return hook.Abort
		}
		return hook.Continue
	})
	for _, line := range []string{"hello", "secret"} {
		if logLine.Invoke(line) == hook.Abort {
			fmt.Println("dropped")
			continue
		}
		fmt.Println(line)
	}
	// Output:
	// hello
	// dropped
}
