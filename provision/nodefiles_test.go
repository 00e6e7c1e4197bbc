package provision

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWriteFilesScript(t *testing.T) {
	s := WriteFilesScript(map[string]string{"/etc/hosts": "a\nLAB_EOF_0\n", "/etc/x y": "z"})
	assert.Contains(t, s, "<<'LAB_EOF_0_'")
	assert.Contains(t, s, "'/etc/x y'")
}
