package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDelay(t *testing.T) {
	d, err := parseDelay("200ms", 20*time.Millisecond, "5%", "1mbit")
	require.NoError(t, err)
	assert.Equal(t, 200*time.Millisecond, d.Delay)
	assert.Equal(t, 0.05, d.Loss)
	assert.Equal(t, int64(1e6), d.Rate)
	for rate, bits := range map[string]int64{"500kbit": 500e3, "10mbps": 80e6, "1gbit": 1e9, "100bps": 800} {
		v, err := parseRate(rate)
		require.NoError(t, err, rate)
		assert.Equal(t, bits, v, rate)
	}
	for _, bad := range []string{"fast", "-1mbit", "1 furlong", ""} {
		_, err := parseRate(bad)
		assert.Error(t, err, bad)
	}
	_, err = parseDelay("soon", 0, "", "")
	assert.Error(t, err)
}
