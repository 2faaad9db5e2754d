package app

import (
	"reflect"
	"testing"
)

func TestFlagsFirst(t *testing.T) {
	a := New("test")
	cases := []struct{ in, want []string }{
		{[]string{"k", "models", "show", "densenet", "--depth", "1"}, []string{"k", "models", "show", "--depth", "1", "densenet"}},
		{[]string{"k", "models", "show", "densenet", "--format=json"}, []string{"k", "models", "show", "--format=json", "densenet"}},
		{[]string{"k", "models", "--format", "json"}, []string{"k", "models", "--format", "json"}},
		{[]string{"k", "models", "show", "x", "--", "--depth"}, []string{"k", "models", "show", "x", "--", "--depth"}},
		{[]string{"k", "--help"}, []string{"k", "--help"}},
		{[]string{"k", "version", "--format", "json"}, []string{"k", "version", "--format", "json"}},
	}
	for _, c := range cases {
		if got := flagsFirst(a, c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("flagsFirst(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
