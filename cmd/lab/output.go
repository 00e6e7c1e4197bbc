package main

import (
	"encoding/json"
	"io"
	"os"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
