package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFollowArgs(t *testing.T) {
	for in, want := range map[string]string{
		"logs pg1 -f":                  "logs pg1 --follow",
		"-f x.yaml logs pg1 -f -n 5":   "-f x.yaml logs pg1 --follow -n 5",
		"--file x.yaml logs -f pg1":    "--file x.yaml logs --follow pg1",
		"-f x.yaml up":                 "-f x.yaml up",
		"exec pg1 -- tail -f /var/log": "exec pg1 -- tail -f /var/log",
		"logs pg1 -- -f":               "logs pg1 -- -f",
		"status -f":                    "status -f",
	} {
		assert.Equal(t, want, strings.Join(followArgs(strings.Fields(in)), " "), in)
	}
}
