package backbone

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nkeys"
)

// Check validates what cfg names outside the configuration file, without
// touching the network: the credentials file or nkey seed can be read and
// parsed, and the TLS files load. It returns the TLS configuration, or
// nil when none is asked for.
func Check(cfg Config) (*tls.Config, error) {
	n := cfg.NATS
	if n == nil {
		return nil, errors.New("backbone: no nats configuration")
	}
	if len(n.URLs) == 0 {
		return nil, errors.New("backbone: nats.urls: no URL")
	}
	switch {
	case n.Creds != "":
		b, err := os.ReadFile(n.Creds)
		if err != nil {
			return nil, fmt.Errorf("nats.creds: %w", err)
		}
		if _, err := nkeys.ParseDecoratedJWT(b); err != nil {
			return nil, fmt.Errorf("nats.creds %s: no user JWT: %w", n.Creds, err)
		}
		if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
			return nil, fmt.Errorf("nats.creds %s: no user seed: %w", n.Creds, err)
		}
	case n.NKey != "":
		b, err := os.ReadFile(n.NKey)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey: %w", err)
		}
		if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
			return nil, fmt.Errorf("nats.nkey %s: not an nkey seed: %w", n.NKey, err)
		}
	}
	if !n.TLS.Enabled() {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: n.TLS.ServerName}
	if n.TLS.CA != "" {
		pem, err := os.ReadFile(n.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.ca: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.tls.ca %s: no PEM certificate", n.TLS.CA)
		}
	}
	if n.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(n.TLS.Cert, n.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.cert %s, nats.tls.key %s: %w", n.TLS.Cert, n.TLS.Key, err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
