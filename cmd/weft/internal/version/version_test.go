package version

import (
	"runtime/debug"
	"testing"
)

func TestString(t *testing.T) {
	rev := "a9fe247abcdef0123456789abcdef0123456789a"
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}}, "(devel)-a9fe247abcde+dirty"},
		{debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207002516-a9fe247abcde+dirty"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}}, "v0.0.0-20261207002516-a9fe247abcde+dirty"},
		{debug.BuildInfo{}, "(devel)"},
	} {
		in := FromBuildInfo(&c.bi)
		if got := in.String(); got != c.want {
			t.Errorf("%+v: String() = %q, want %q", c.bi.Main, got, c.want)
		}
	}
	if in := FromBuildInfo(&debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}}}); in.Revision != rev {
		t.Errorf("revision %q", in.Revision)
	}
}
