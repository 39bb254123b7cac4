package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// privateBroker is an in-memory ElasticMQ run for the benchmarks alone, so that other users of
// the shared test broker neither disturb the figures nor suffer from the load (and so that the
// 20 KB prefills get a larger heap than the shared broker's).
type privateBroker struct {
	cmd     *exec.Cmd
	URL     string
	Version string
	stopped bool
}

// startElasticMQ runs the jars `make up` fetched into .cache/elasticmq/lib, with the repository's
// in-memory configuration, on a free port.
func startElasticMQ(root string) (*privateBroker, error) {
	lib := filepath.Join(root, ".cache", "elasticmq", "lib")
	jars, _ := filepath.Glob(filepath.Join(lib, "elasticmq-server_*.jar"))
	if len(jars) == 0 {
		return nil, fmt.Errorf("no ElasticMQ jars in %s (run make up)", lib)
	}
	version := strings.TrimSuffix(filepath.Base(jars[0]), ".jar")
	if i := strings.LastIndexByte(version, '-'); i >= 0 {
		version = version[i+1:]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	conf := filepath.Join(root, "internal", "elasticmq")
	logf, err := os.CreateTemp("", "bench-elasticmq-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("java", "-Xmx3g", "-Dfile.encoding=UTF-8",
		"-Dconfig.file="+filepath.Join(conf, "elasticmq.conf"),
		"-Dlogback.configurationFile="+filepath.Join(conf, "logback.xml"),
		fmt.Sprintf("-Drest-sqs.bind-port=%d", port), fmt.Sprintf("-Dnode-address.port=%d", port),
		"-cp", filepath.Join(lib, "*"), "org.elasticmq.server.Main")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &privateBroker{cmd: cmd, URL: fmt.Sprintf("http://127.0.0.1:%d", port), Version: version}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(b.URL + "/?Action=ListQueues")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return b, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.stop()
	return nil, fmt.Errorf("ElasticMQ did not start on port %d (log: %s)", port, logf.Name())
}

// stop ends the broker and waits for it; later calls do nothing.
func (b *privateBroker) stop() {
	if b == nil || b.cmd.Process == nil || b.stopped {
		return
	}
	b.stopped = true
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
