//go:build !race

package p2ptest

// raceDetector is true when the test binary is built with -race.
const raceDetector = false
