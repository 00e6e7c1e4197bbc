package state

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary play the lock holder in lockHolder.
func TestMain(m *testing.M) {
	if dir := os.Getenv("LAB_TEST_LOCK_HOLDER"); dir != "" {
		os.Exit(lockHolder(dir))
	}
	os.Exit(m.Run())
}

// lockHolder takes the lock in dir, then starts a child that inherits the
// lock's descriptor (as a child liblxc forks keeps every descriptor), prints
// the child's PID and waits to be killed.
func lockHolder(dir string) int {
	s := Open(dir)
	if err := s.Lock(context.Background(), false, 0); err != nil {
		fmt.Println("error", err)
		return 1
	}
	child := exec.Command("sleep", "60")
	child.ExtraFiles = []*os.File{s.lock}
	if err := child.Start(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("child", child.Process.Pid)
	time.Sleep(time.Minute)
	return 0
}

// A holder killed with SIGKILL leaves no lock behind, even while a child
// that has the lock's descriptor lives on; the next Lock says it recovered.
func TestLockDiesWithHolderNotItsChildren(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".lab")
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), "LAB_TEST_LOCK_HOLDER="+dir)
	out, err := holder.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, holder.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	f := strings.Fields(line)
	require.Len(t, f, 2, line)
	require.Equal(t, "child", f[0], line)
	childPID, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(childPID, syscall.SIGKILL) })

	s := Open(dir)
	var le *LockedError
	require.ErrorAs(t, s.Lock(context.Background(), false, 0), &le)
	assert.Equal(t, holder.Process.Pid, le.PID, "the kernel names the holder")

	require.NoError(t, holder.Process.Kill())
	_ = holder.Wait()
	require.NoError(t, syscall.Kill(childPID, 0), "the child with the lock's descriptor still runs")
	require.NoError(t, s.Lock(context.Background(), false, 0), "a dead holder's child must not keep the lab locked")
	assert.Equal(t, holder.Process.Pid, s.Recovered)
	s.Unlock()

	// A lock released normally is not called recovered.
	s2 := Open(dir)
	require.NoError(t, s2.Lock(context.Background(), false, 0))
	assert.Zero(t, s2.Recovered)
	s2.Unlock()
}

// Waiting for the lock ends with the context.
func TestLockWaitHonoursContext(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".lab")
	a, b := Open(dir), Open(dir)
	require.NoError(t, a.Lock(context.Background(), false, 0))
	defer a.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := b.Lock(ctx, true, time.Hour)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}
