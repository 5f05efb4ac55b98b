// Package trace is the incident model of mtev-supervise and what turns raw
// captures into it: the Record stored in the journal, the parser of Go
// fatal output, fingerprints that group incidents of the same bug, the
// grouping of goroutines into buckets of identical stacks, the human view
// printed by `mtev-supervise traces show`, resource sampling of the child
// and the external glider command.
//
// # Contract
//
//   - ParseCrash, Headline, Fingerprint, Buckets and WriteText are pure
//     functions of their input: safe for concurrent use, no I/O beyond the
//     writer given, no panics on malformed input. ParseCrash reads at most
//     256 MiB of crash text.
//   - Fingerprint is versioned ("v1:" prefix); see its doc comment for what
//     it hashes. A change of algorithm gets a new version.
//   - A record that kept only the raw crash output (CrashOutput, no
//     Goroutines) is read as if its goroutines had been parsed: Culprit,
//     Summary, Fingerprint and WriteText parse the output themselves, so
//     both forms of the same crash share a fingerprint.
//   - A Sampler is safe for concurrent use; Sample reads /proc and does not
//     block beyond that. SampleResources blocks for ResourceInterval.
//   - RunGlider blocks its caller for at most the budget it is given plus
//     half a second; callers that must not wait at all (the monitor loop)
//     run it on a goroutine they own and wait for.
//
// Capture by Delve lives in the subpackage trace/delve.
package trace
