package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// scriptLibrary is the shell library every service script sources.
const scriptLibrary = "internal/daemon"

// CopyCheckout makes a second checkout of the repository in a temporary directory with the
// given files and directories of this one (relative paths) and the shell library the service
// scripts source, and returns its root. It stands for another clone on the same machine
// running the same scripts.
func CopyCheckout(t testing.TB, paths ...string) string {
	t.Helper()
	src := RepoRoot(t)
	dst := t.TempDir()
	for _, p := range append([]string{scriptLibrary}, paths...) {
		if err := copyTree(filepath.Join(src, p), filepath.Join(dst, p)); err != nil {
			t.Fatalf("testenv: copy %s: %v", p, err)
		}
	}
	return dst
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// HeldFDRun is the outcome of RunHoldingFD.
type HeldFDRun struct {
	Output string
	Err    error // the command's exit status
	// PipeHeld is true when, after the command exited, some process it left behind still
	// held the extra descriptor (or its stdout) open: a caller waiting on them would hang.
	PipeHeld bool
	// PipeInode identifies the extra descriptor's pipe, for DescriptorsOn.
	PipeInode uint64
}

// RunHoldingFD runs a command the way a CI wrapper does that holds a lock or a pipe: with an
// extra open descriptor (fd 3, the write end of a pipe) and its output read through a pipe.
// It returns once the command has exited and says whether anything it started kept either
// pipe open.
func RunHoldingFD(t testing.TB, env []string, name string, args ...string) HeldFDRun {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout = &out // copied through a pipe: Wait waits for every holder of it
	cmd.Stderr = &out
	cmd.WaitDelay = 3 * time.Second
	runErr := cmd.Run()
	w.Close()
	res := HeldFDRun{Output: out.String(), Err: runErr, PipeInode: st.Ino}
	if errors.Is(runErr, exec.ErrWaitDelay) {
		res.PipeHeld, res.Err = true, nil
	}
	_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(r); errors.Is(err, os.ErrDeadlineExceeded) {
		res.PipeHeld = true
	}
	return res
}

// DescriptorsOn lists the descriptors of process pid that point to the pipe with the given
// inode, as "fd -> target".
func DescriptorsOn(pid int, inode uint64) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, _ := os.ReadDir(dir)
	want := fmt.Sprintf("pipe:[%d]", inode)
	var held []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && target == want {
			held = append(held, e.Name()+" -> "+target)
		}
	}
	return held
}

// Alive tells whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z' && s[i+2] != 'X'
}
