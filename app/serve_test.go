package app

import "testing"

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"32MB": 32 << 20, "512kb": 512 << 10, "1GiB": 1 << 30, "1048576": 1 << 20, "2 M": 2 << 20, "100B": 100} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1MB", "lots", "0"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) accepted", in)
		}
	}
}
