package journal_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/mtev-supervise/mtev-supervise/pkg/journal"
)

func Example() {
	tmp, err := os.MkdirTemp("", "journal-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "incidents")

	w, err := journal.Open(dir, journal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, rec := range []string{`{"reason":"crash"}`, `{"reason":"stall"}`} {
		seq, err := w.Append([]byte(rec))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("appended", seq)
	}
	w.Close()

	r, err := journal.NewReader(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d %s\n", e.Seq, e.Data)
	}
	fmt.Println("damage:", len(r.Damage()))
	// Output:
	// appended 1
	// appended 2
	// 1 {"reason":"crash"}
	// 2 {"reason":"stall"}
	// damage: 0
}
