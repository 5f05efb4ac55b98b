package stats_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mtev-supervise/mtev-supervise/pkg/stats"
)

func Example() {
	reg := stats.NewRegistry()
	reg.SetApp("demo")
	requests := reg.NS("demo/http").Counter("requests")
	latency := reg.NS("demo/http").Histogram("latency")

	requests.Inc()
	latency.RecordDuration(1200 * time.Microsecond)

	simple, _ := json.Marshal(reg.JSON(stats.Simple, false))
	fmt.Println(string(simple))
	tagged, _ := json.Marshal(reg.JSON(stats.Tagged, false))
	fmt.Println(string(tagged))
	// Output:
	// {"demo":{"http":{"requests":1}}}
	// {"latency|ST[app:demo,demo:http]":{"_type":"H","_value":["H[1.2e-03]=1"]},"requests|ST[app:demo,demo:http]":{"_type":"L","_value":1}}
}
