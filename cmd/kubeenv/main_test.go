package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunRejectsBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"start"}, `unknown command "start"`},
		{[]string{"up"}, "up needs --dir"},
		{[]string{"down"}, "down needs --dir"},
		{[]string{"up", "--dir", "x", "extra"}, "unexpected arguments"},
		{[]string{"up", "--bogus"}, "flag provided but not defined"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if assert.Error(t, err, "%v", tc.args) {
			assert.Contains(t, err.Error(), tc.want)
		}
		assert.Empty(t, out.String(), "%v: nothing on stdout, which scripts eval", tc.args)
	}
}

func TestDownWithoutEnvironmentIsANoOp(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.NoError(t, run([]string{"down", "--dir", t.TempDir()}, &out, &errOut))
}
