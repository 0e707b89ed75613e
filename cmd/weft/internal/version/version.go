// Package version reads what the weft binary was built from out of the Go
// build information (runtime/debug): the module version and the VCS
// revision. The CLI prints it (weft version, weft --version), the node
// reports it in its status and advertises it to the other members.
//
// Concurrency: the functions are safe for concurrent use.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what the binary was built from.
type Info struct {
	// Version is the module version ("v1.2.3", a pseudo-version
	// "v0.0.0-2026…-abcdef…", or "(devel)" when the toolchain recorded none).
	Version string `json:"version"`
	// Revision is the VCS revision (commit hash), "" when not recorded.
	Revision string `json:"revision"`
	// Time is the commit time (RFC 3339), "" when not recorded.
	Time string `json:"time,omitempty"`
	// Modified is set when the work tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// Go is the toolchain that built the binary.
	Go string `json:"go"`
}

// revision is the VCS revision stamped by the linker
// (-X github.com/weftgrid/weft/cmd/weft/internal/version.revision=HASH, as
// `make build` does) for builds where the toolchain records none (-buildvcs=false).
var revision string

// Get returns the build information of the running binary.
func Get() Info {
	in := Info{Version: "(devel)", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		in = FromBuildInfo(bi)
	}
	if in.Revision == "" {
		in.Revision = revision
	}
	return in
}

// FromBuildInfo extracts Info from bi.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the short form nodes advertise and status shows: the module
// version, followed by the first 12 digits of the revision when the version
// does not already name it (a tagged or pseudo-version names its commit),
// and "+dirty" for a modified tree. For example "v1.2.0", "(devel)-a9fe247abcde+dirty".
func (in Info) String() string {
	s := in.Version
	short := in.Revision
	if len(short) > 12 {
		short = short[:12]
	}
	if short != "" && !strings.Contains(s, short) {
		s += "-" + short
	}
	if in.Modified && !strings.HasSuffix(s, "+dirty") {
		s += "+dirty"
	}
	return s
}

// String is Get().String().
func String() string { return Get().String() }
