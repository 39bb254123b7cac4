package redisbackend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// errBadURL is the reason given for a URL go-redis rejects: its messages may repeat the URL,
// password included, so they are not passed on.
var errBadURL = errors.New("")

// parseURL reads a result_backend URL the way Celery 5.7's Redis backend does, so that the URL
// a Celery app is configured with works unchanged:
//
//   - redis://[[user]:password@]host[:port][/db] and rediss:// for TLS;
//   - redis+socket:///path/to/redis.sock (Celery's Unix socket form), the database in the
//     db or virtual_host query option, and go-redis's unix:///path form;
//   - Celery's TLS options on rediss:// URLs: ssl_cert_reqs (CERT_REQUIRED, CERT_OPTIONAL,
//     CERT_NONE or required, optional, none), ssl_ca_certs, ssl_certfile, ssl_keyfile and
//     ssl_check_hostname; on a redis:// URL they are an error, as in Celery, rather than a
//     silent plain text connection;
//   - redis-py's connection options socket_timeout and socket_connect_timeout (seconds) and
//     max_connections; socket_keepalive, retry_on_timeout and health_check_interval are
//     accepted, go-redis keeping connections alive, retrying and checking idle connections
//     itself;
//   - go-redis's own query options (dial_timeout, pool_size, client_name...).
//
// Its errors never repeat the URL.
func parseURL(raw string) (*redis.Options, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errBadURL
	}
	scheme = strings.ToLower(scheme)
	u, err := url.Parse("redis://" + rest)
	if err != nil {
		return nil, errBadURL
	}
	q := u.Query()
	take := func(name string) (string, bool) {
		v, ok := q[name]
		delete(q, name)
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[len(v)-1], true
	}
	tlsOpts := map[string]string{}
	for _, k := range []string{"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"} {
		if v, ok := take(k); ok {
			tlsOpts[k] = v
		}
	}
	if len(tlsOpts) > 0 && scheme != "rediss" {
		return nil, errors.New("the ssl_* options need a rediss:// URL")
	}
	var conn struct {
		readTimeout, dialTimeout time.Duration
		poolSize                 int
	}
	if v, ok := take("socket_timeout"); ok {
		if conn.readTimeout, err = seconds("socket_timeout", v); err != nil {
			return nil, err
		}
	}
	if v, ok := take("socket_connect_timeout"); ok {
		if conn.dialTimeout, err = seconds("socket_connect_timeout", v); err != nil {
			return nil, err
		}
	}
	if v, ok := take("max_connections"); ok {
		if conn.poolSize, err = strconv.Atoi(v); err != nil || conn.poolSize < 1 {
			return nil, errors.New("max_connections must be a positive integer")
		}
	}
	for _, k := range []string{"socket_keepalive", "retry_on_timeout", "health_check_interval"} {
		take(k)
	}

	var forGoRedis url.URL
	switch scheme {
	case "redis", "rediss":
		forGoRedis = url.URL{Scheme: scheme, User: u.User, Host: u.Host, Path: u.Path}
	case "redis+socket", "unix":
		// Celery reads "socket:///tmp/redis.sock" with HTTP rules: the path is the socket, the
		// database comes from the query (virtual_host, overridden by db).
		if vhost, ok := take("virtual_host"); ok && !q.Has("db") {
			q.Set("db", vhost)
		}
		path := u.Path
		if u.Host != "" {
			path = "/" + u.Host + u.Path
		}
		forGoRedis = url.URL{Scheme: "unix", User: u.User, Path: path}
	default:
		return nil, errBadURL
	}
	forGoRedis.RawQuery = q.Encode()
	opts, err := redis.ParseURL(forGoRedis.String())
	if err != nil {
		return nil, errBadURL
	}
	if conn.readTimeout > 0 {
		opts.ReadTimeout, opts.WriteTimeout = conn.readTimeout, conn.readTimeout
	}
	if conn.dialTimeout > 0 {
		opts.DialTimeout = conn.dialTimeout
	}
	if conn.poolSize > 0 {
		opts.PoolSize = conn.poolSize
	}
	if opts.TLSConfig != nil {
		if err := applyTLSOptions(opts.TLSConfig, tlsOpts); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// seconds reads a redis-py timeout, a number of seconds that may have a fraction.
func seconds(name, v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || f > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("%s must be a positive number of seconds", name)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// applyTLSOptions applies Celery's TLS query options to cfg. Python's ssl module verifies the
// server's certificate for CERT_OPTIONAL as for CERT_REQUIRED on a client socket, so both
// verify it here; a URL without ssl_cert_reqs, which Celery refuses, verifies it too.
func applyTLSOptions(cfg *tls.Config, o map[string]string) error {
	verify := true
	if v, ok := o["ssl_cert_reqs"]; ok {
		switch v {
		case "CERT_REQUIRED", "required", "CERT_OPTIONAL", "optional":
		case "CERT_NONE", "none":
			verify = false
		default:
			return errors.New("ssl_cert_reqs must be CERT_REQUIRED, CERT_OPTIONAL or CERT_NONE")
		}
	}
	checkHostname := true
	if v, ok := o["ssl_check_hostname"]; ok {
		switch strings.ToLower(v) {
		case "", "0", "f", "false", "n", "no":
			checkHostname = false
		}
	}
	if path := o["ssl_ca_certs"]; path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("ssl_ca_certs: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ssl_ca_certs: no PEM certificate in %s", path)
		}
		cfg.RootCAs = pool
	}
	if certFile := o["ssl_certfile"]; certFile != "" {
		// As Python's load_cert_chain: without a key file, the key is in the certificate file.
		keyFile := o["ssl_keyfile"]
		if keyFile == "" {
			keyFile = certFile
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("ssl_certfile/ssl_keyfile: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	} else if o["ssl_keyfile"] != "" {
		return errors.New("ssl_keyfile needs ssl_certfile")
	}
	switch {
	case !verify:
		cfg.InsecureSkipVerify = true
	case !checkHostname:
		// The chain is still verified, against the CAs given, without the host name.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("redisbackend: the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return nil
}
