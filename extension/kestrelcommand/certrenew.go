package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudv1 "github.com/kestrelai/otelcol-kestrel/api/cloud/v1"
)

// maxPEM bounds each decoded PEM blob of a renewal.
const maxPEM = 64 << 10

// renewCertificate answers CertificateRenewalRequest. It runs on a handler goroutine, never
// in the receive loop. A pair that passes every check is written over tls::cert_file and
// tls::key_file (each through a temporary file renamed in the same directory), or into
// certificate_renewal::secret when set (the kubelet then refreshes the mounted files); the
// TLS file watch then reconnects with it. A refused pair leaves the files, and the
// connection, alone.
func (e *kestrelCommand) renewCertificate(ctx context.Context, req proto.Message) proto.Message {
	r := req.(*cloudv1.CertificateRenewalRequest)
	resp := &cloudv1.CertificateRenewalResponse{RequestId: r.GetRequestId()}
	certPEM, keyPEM, err := e.checkRenewal(r, time.Now())
	if err == nil && e.certSecret != nil {
		if err = e.writeCertSecret(ctx, certPEM, keyPEM); err == nil {
			resp.Success, resp.AppliedAt = true, timestamppb.Now()
			e.logger.Info("Accepted a certificate renewal from Kestrel Cloud and wrote it to the client-certificate Secret; "+
				"the collector reconnects with it when the kubelet refreshes the mounted files (usually within a minute)",
				zap.String("request_id", r.GetRequestId()), zap.String("serial_number", r.GetSerialNumber()), zap.Stringer("secret", e.certSecret))
			return resp
		}
	} else if err == nil {
		err = e.writePair(certPEM, keyPEM)
	}
	if err != nil {
		resp.ErrorMessage = "certificate renewal refused: " + err.Error()
		e.logger.Warn("Refused a certificate renewal from Kestrel Cloud; keeping the current certificate",
			zap.String("request_id", r.GetRequestId()), zap.String("serial_number", r.GetSerialNumber()), zap.Error(err))
		return resp
	}
	resp.Success, resp.AppliedAt = true, timestamppb.Now()
	e.logger.Info("Accepted a certificate renewal from Kestrel Cloud; reconnecting with it",
		zap.String("request_id", r.GetRequestId()), zap.String("serial_number", r.GetSerialNumber()))
	return resp
}

// checkRenewal decodes and validates a renewal: the key matches the certificate, the
// certificate is a client certificate that chains to the CA this collector trusts (the
// request's ca_cert may add intermediates, never a new root), and it is valid now, allowing
// certificate_renewal::max_clock_skew for a start a little in the future.
func (e *kestrelCommand) checkRenewal(r *cloudv1.CertificateRenewalRequest, now time.Time) (certPEM, keyPEM []byte, err error) {
	if e.cfg.TLS.CertFile == "" || e.cfg.TLS.KeyFile == "" {
		return nil, nil, errors.New("the client certificate is configured inline (tls::cert_pem/key_pem); renewal needs tls::cert_file and tls::key_file")
	}
	blobs := make([][]byte, 3)
	for i, f := range []struct{ name, value string }{{"client_cert", r.GetClientCert()}, {"client_key", r.GetClientKey()}, {"ca_cert", r.GetCaCert()}} {
		if f.value == "" && f.name == "ca_cert" {
			continue
		}
		if len(f.value) > base64.StdEncoding.EncodedLen(maxPEM) {
			return nil, nil, fmt.Errorf("%s is larger than %d bytes", f.name, maxPEM)
		}
		b, err := base64.StdEncoding.DecodeString(f.value)
		if err != nil {
			return nil, nil, fmt.Errorf("%s is not base64: %w", f.name, err)
		}
		blobs[i] = b
	}
	pair, err := tls.X509KeyPair(blobs[0], blobs[1])
	if err != nil {
		return nil, nil, fmt.Errorf("the key does not match the certificate, or either is not PEM: %w", err)
	}
	leaf := pair.Leaf
	if now.After(leaf.NotAfter) {
		return nil, nil, fmt.Errorf("the certificate (serial %s) expired at %s", leaf.SerialNumber.Text(16), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if leaf.NotBefore.After(now.Add(e.cfg.CertificateRenewal.MaxClockSkew)) {
		return nil, nil, fmt.Errorf("the certificate (serial %s) is not valid until %s, more than the allowed clock skew of %v ahead",
			leaf.SerialNumber.Text(16), leaf.NotBefore.UTC().Format(time.RFC3339), e.cfg.CertificateRenewal.MaxClockSkew)
	}
	roots, err := e.trustedCAs()
	if err != nil {
		return nil, nil, err
	}
	intermediates := x509.NewCertPool()
	for rest := blobs[2]; len(rest) > 0; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("ca_cert holds an unreadable certificate: %w", err)
		}
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, nil, fmt.Errorf("the certificate does not chain to the CA this collector trusts (tls::ca_file): %w", err)
	}
	return blobs[0], blobs[1], nil
}

// trustedCAs is tls::ca_file (or tls::ca_pem), else the system roots.
func (e *kestrelCommand) trustedCAs() (*x509.CertPool, error) {
	var ca []byte
	switch {
	case e.cfg.TLS.CAFile != "":
		b, err := os.ReadFile(filepath.Clean(e.cfg.TLS.CAFile))
		if err != nil {
			return nil, fmt.Errorf("reading tls::ca_file: %w", err)
		}
		ca = b
	case e.cfg.TLS.CAPem != "":
		ca = []byte(e.cfg.TLS.CAPem)
	default:
		return x509.SystemCertPool()
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("tls::ca_file holds no certificate")
	}
	return pool, nil
}

// writePair replaces the key, then the certificate. Each file is replaced atomically
// (rename in its directory), so a reader sees the old or the new file, never a partial
// one; the TLS watch waits for both to settle before loading them.
func (e *kestrelCommand) writePair(certPEM, keyPEM []byte) error {
	if err := writeAtomic(e.cfg.TLS.KeyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(e.cfg.TLS.CertFile, certPEM, 0o644)
}

// writeAtomic writes data to a temporary file in path's directory and renames it over path,
// so readers never see a partial file. A missing directory is created (mode 0700).
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot write next to %s (a read-only mounted Secret? see the kestrel_command README): %w", path, err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}
