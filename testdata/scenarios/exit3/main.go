// Command exit3 prints "ready" and exits with status 3.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("ready")
	os.Exit(3)
}
