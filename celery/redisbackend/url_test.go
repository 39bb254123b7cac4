package redisbackend_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/celery"
	"github.com/watermill-kombu/watermill-kombu/celery/redisbackend"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestCeleryURLForms: the result_backend URLs a Celery app is configured with work unchanged:
// rediss:// with Celery's ssl_* options (Celery requires ssl_cert_reqs there), Celery's
// redis+socket:// Unix socket form and redis-py's connection options. A result stored through
// each is read by Celery's AsyncResult.get with the same URL.
func TestCeleryURLForms(t *testing.T) {
	python := testenv.Python(t)
	srv := startTLSRedis(t)
	ca := url.QueryEscape(srv.caFile)
	for name, u := range map[string]string{
		"rediss required": fmt.Sprintf("rediss://127.0.0.1:%d/3?ssl_cert_reqs=required&ssl_ca_certs=%s", srv.tlsPort, ca),
		"rediss CERT_REQUIRED no hostname": fmt.Sprintf("rediss://localhost:%d/3?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=%s&ssl_check_hostname=false",
			srv.tlsPort, ca),
		"rediss CERT_NONE": fmt.Sprintf("rediss://127.0.0.1:%d/3?ssl_cert_reqs=CERT_NONE", srv.tlsPort),
		"socket":           "redis+socket://" + srv.socket + "?virtual_host=3",
		"redis-py options": fmt.Sprintf("redis://127.0.0.1:%d/3?socket_timeout=2.5&socket_connect_timeout=2&max_connections=4&retry_on_timeout=true", srv.port),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := redisbackend.New(redisbackend.Config{URL: u})
			require.NoError(t, err)
			defer b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			id := uuid.NewString()
			require.NoError(t, b.Store(ctx, celery.TaskResult{TaskID: id, Status: celery.StateSuccess, Result: "ok " + name}))
			out, err := exec.CommandContext(ctx, python, "-c", `
import sys
from celery import Celery
app = Celery("t", backend=sys.argv[1])
print(app.AsyncResult(sys.argv[2]).get(timeout=10))
`, u, id).CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Equal(t, "ok "+name, strings.TrimSpace(string(out)))
		})
	}

	t.Run("server certificate verified", func(t *testing.T) {
		// Without the CA that signed the server's certificate, the connection is refused.
		b, err := redisbackend.New(redisbackend.Config{URL: fmt.Sprintf("rediss://127.0.0.1:%d/3?ssl_cert_reqs=CERT_REQUIRED", srv.tlsPort)})
		require.NoError(t, err)
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err = b.Store(ctx, celery.TaskResult{TaskID: uuid.NewString(), Status: celery.StateSuccess})
		require.Error(t, err)
		assert.ErrorIs(t, err, kombu.ErrConnection)
	})
}

// TestCeleryURLErrors: what Celery refuses, or cannot honour, is a ConfigError naming URL:
// TLS options on a plain redis:// URL (a silent plain text connection otherwise), an unknown
// ssl_cert_reqs, an unreadable CA file. The URL, password included, is never repeated.
func TestCeleryURLErrors(t *testing.T) {
	for name, u := range map[string]string{
		"ssl option on redis://": "redis://:s3cret@127.0.0.1:6379/0?ssl_cert_reqs=required",
		"bad ssl_cert_reqs":      "rediss://:s3cret@127.0.0.1:6379/0?ssl_cert_reqs=maybe",
		"missing CA file":        "rediss://:s3cret@127.0.0.1:6379/0?ssl_cert_reqs=required&ssl_ca_certs=/nonexistent/ca.pem",
		"bad socket_timeout":     "redis://:s3cret@127.0.0.1:6379/0?socket_timeout=soon",
		"unknown option":         "redis://:s3cret@127.0.0.1:6379/0?frobnicate=1",
	} {
		t.Run(name, func(t *testing.T) {
			b, err := redisbackend.New(redisbackend.Config{URL: u})
			require.Nil(t, b)
			var ce *kombu.ConfigError
			require.True(t, errors.As(err, &ce), "got %v", err)
			assert.Equal(t, "redisbackend.Config.URL", ce.Field)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

type tlsRedis struct {
	port, tlsPort int
	socket        string
	caFile        string
}

// startTLSRedis starts a throwaway redis-server listening on a TCP port, a TLS port (with a
// certificate for 127.0.0.1 and localhost signed by a fresh CA) and a Unix socket, and kills
// it when the test ends.
func startTLSRedis(t *testing.T) tlsRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if testing.Short() {
			t.Skip("redis-server is not installed; skipped under -short")
		}
		t.Fatalf("redis-server is not installed; run `make redis-up`, which installs it")
	}
	dir := t.TempDir()
	srv := tlsRedis{port: testenv.FreePort(t), tlsPort: testenv.FreePort(t),
		socket: filepath.Join(dir, "redis.sock"), caFile: filepath.Join(dir, "ca.pem")}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writeCerts(t, srv.caFile, certFile, keyFile)
	logFile, err := os.Create(filepath.Join(dir, "redis.log"))
	require.NoError(t, err)
	defer logFile.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(srv.port), "--bind", "127.0.0.1",
		"--tls-port", fmt.Sprint(srv.tlsPort), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", srv.caFile, "--tls-auth-clients", "no",
		"--unixsocket", srv.socket, "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("unix", srv.socket, time.Second)
		if err == nil {
			c.Close()
			if c, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", srv.tlsPort), time.Second); err == nil {
				c.Close()
				return srv
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("redis-server did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeCerts writes a CA certificate, and a server certificate and key it signed.
func writeCerts(t *testing.T, caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"redis.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	write := func(path, typ string, b []byte) {
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600))
	}
	write(caFile, "CERTIFICATE", caDER)
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
}
