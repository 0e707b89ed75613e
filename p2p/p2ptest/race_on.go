//go:build race

package p2ptest

// raceDetector is true when the test binary is built with -race, which
// slows everything about tenfold: test nodes then probe with longer
// timeouts.
const raceDetector = true
