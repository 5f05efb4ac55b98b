// Command mapwrites writes one map from several goroutines at once.
package main

import "sync"

func main() {
	m := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writer(m, i)
		}()
	}
	wg.Wait()
}

func writer(m map[int]int, seed int) {
	for j := 0; ; j++ {
		m[j%64] = seed
	}
}
