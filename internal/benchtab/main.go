// Command benchtab reads `go test -bench` output on stdin and prints each
// figure beside the baseline it names, measured in the same run.
//
// Naming convention: a figure is a top-level benchmark, BenchmarkFigure, with
// sub-benchmarks for what is compared. A sub-benchmark whose name starts with
// "base-" is a baseline; every other sub-benchmark is a subject. For every
// subject and every metric it reports (ns/op, B/op, allocs/op and any custom
// unit from b.ReportMetric), benchtab prints the value, and for each baseline
// of the same figure that reports the same metric, that value and the ratio
// subject/baseline. A top-level benchmark with no sub-benchmarks is printed
// alone. Figures keep the order in which they ran.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

type result struct {
	metrics map[string]float64
	order   []string
}

type figure struct {
	name     string
	pkg      string
	variants []string
	results  map[string]*result
}

func main() {
	format := flag.String("format", "markdown", "output format: markdown or text")
	readme := flag.String("readme", "", "write the markdown table into this file, between the lines "+beginMark+" and "+endMark)
	flag.Parse()
	if err := run(*format, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "benchtab:", err)
		os.Exit(1)
	}
}

const (
	beginMark = "<!-- bench:begin -->"
	endMark   = "<!-- bench:end -->"
)

func run(format, readme string) error {
	figs, err := parse(os.Stdin)
	if err != nil {
		return err
	}
	if readme == "" {
		return render(os.Stdout, figs, format)
	}
	var b strings.Builder
	if err := render(&b, figs, "markdown"); err != nil {
		return err
	}
	doc, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	s := string(doc)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s section", readme, beginMark, endMark)
	}
	s = s[:i+len(beginMark)] + "\n" + b.String() + s[j:]
	return os.WriteFile(readme, []byte(s), 0o644)
}

// parse reads benchmark lines. Repeated runs of one benchmark (-count) keep
// the median of each metric.
func parse(r io.Reader) ([]*figure, error) {
	var figs []*figure
	byName := map[string]*figure{}
	samples := map[string]map[string][]float64{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue
		}
		name := trimProcs(fields[0])
		top, variant, _ := strings.Cut(name, "/")
		top = strings.TrimPrefix(top, "Benchmark")
		key := pkg + " " + top
		f := byName[key]
		if f == nil {
			f = &figure{name: top, pkg: pkg, results: map[string]*result{}}
			byName[key] = f
			figs = append(figs, f)
		}
		res := f.results[variant]
		if res == nil {
			res = &result{metrics: map[string]float64{}}
			f.results[variant] = res
			f.variants = append(f.variants, variant)
		}
		skey := key + "/" + variant
		if samples[skey] == nil {
			samples[skey] = map[string][]float64{}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			unit := fields[i+1]
			if _, seen := samples[skey][unit]; !seen {
				res.order = append(res.order, unit)
			}
			samples[skey][unit] = append(samples[skey][unit], v)
			res.metrics[unit] = median(samples[skey][unit])
		}
	}
	return figs, sc.Err()
}

// hasCustomTime reports whether a result has a timing or rate metric of
// its own besides ns/op.
func hasCustomTime(r *result) bool {
	for _, u := range r.order {
		if u != "ns/op" && (strings.HasSuffix(u, "ms") || strings.HasSuffix(u, "us") || strings.HasSuffix(u, "/s")) {
			return true
		}
	}
	return false
}

func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func render(w io.Writer, figs []*figure, format string) error {
	var rows [][]string
	for _, f := range figs {
		var subjects, bases []string
		for _, v := range f.variants {
			if strings.HasPrefix(v, "base-") {
				bases = append(bases, v)
			} else {
				subjects = append(subjects, v)
			}
		}
		if len(subjects) == 0 && len(bases) > 0 {
			subjects, bases = bases, nil
		}
		for _, s := range subjects {
			res := f.results[s]
			custom := hasCustomTime(res)
			for _, unit := range res.order {
				v := res.metrics[unit]
				if unit == "ns/op" && custom {
					// A benchmark with figures of its own (median-ms,
					// msgs/s, ...) has an ns/op that says nothing more.
					continue
				}
				if v == 0 && !nonZeroIn(f, bases, unit) {
					// Nothing to say, unless a baseline has it: 0 refused
					// beside the baseline's thousands is the figure.
					continue
				}
				matched := false
				for _, b := range bases {
					bv, ok := f.results[b].metrics[unit]
					if !ok {
						continue
					}
					matched = true
					ratio := "n/a"
					if bv != 0 {
						ratio = fmt.Sprintf("%.2fx", v/bv)
					}
					rows = append(rows, []string{f.name, s, unit, num(v), strings.TrimPrefix(b, "base-"), num(bv), ratio})
				}
				if !matched {
					rows = append(rows, []string{f.name, s, unit, num(v), "", "", ""})
				}
			}
		}
	}
	head := []string{"figure", "subject", "metric", "value", "baseline", "baseline value", "ratio"}
	switch format {
	case "markdown":
		fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
		fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
		for _, r := range rows {
			fmt.Fprintln(w, "| "+strings.Join(r, " | ")+" |")
		}
	case "text":
		widths := make([]int, len(head))
		for _, r := range append([][]string{head}, rows...) {
			for i, c := range r {
				widths[i] = max(widths[i], len(c))
			}
		}
		for _, r := range append([][]string{head}, rows...) {
			for i, c := range r {
				fmt.Fprintf(w, "%-*s  ", widths[i], c)
			}
			fmt.Fprintln(w)
		}
	default:
		return fmt.Errorf("unknown format %q", format)
	}
	return nil
}

// nonZeroIn reports whether one of the baselines reports unit with a
// value other than 0.
func nonZeroIn(f *figure, bases []string, unit string) bool {
	for _, b := range bases {
		if v, ok := f.results[b].metrics[unit]; ok && v != 0 {
			return true
		}
	}
	return false
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
