package kestrelcommand // import "github.com/kestrelai/otelcol-kestrel/extension/kestrelcommand"

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TokenSecretConfig names the Secret that keeps renewed tokens across restarts of the pod
// (the chart's token Secret). Every renewed token is patched into Key; at start-up the token
// in Key wins over the configured one when it is newer and of the same tenant.
type TokenSecretConfig struct {
	SecretRef `mapstructure:",squash"`
	// Key is the Secret's key of the token.
	Key string `mapstructure:"key"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func (s *TokenSecretConfig) validate() []error {
	const p = "token::persist_secret::"
	return append(s.SecretRef.validate(p), validateSecretKey(p+"key", s.Key)...)
}

// readToken returns the token in the Secret. found is false when the key is missing or
// empty: nothing was put there yet.
func (s *secretStore) readToken(ctx context.Context, key string, now time.Time) (ti tokenInfo, found bool, err error) {
	sec, err := s.read(ctx)
	if err != nil {
		return tokenInfo{}, false, err
	}
	raw := sec.Data[key]
	if len(raw) == 0 {
		return tokenInfo{}, false, nil
	}
	ti, err = parseToken(string(raw), now)
	return ti, true, err
}

// writeToken patches next into the Secret's key unless the Secret already holds a newer
// token of the same tenant (another replica renewed after this one): a restart then starts
// from the newest token. written says whether next was written.
func (s *secretStore) writeToken(ctx context.Context, key string, next tokenInfo) (written bool, err error) {
	err = s.write(ctx, func(cur *corev1.Secret) map[string][]byte {
		if written = !supersedes(cur.Data[key], next); !written {
			return nil
		}
		return map[string][]byte{key: []byte(next.raw)}
	})
	return written && err == nil, err
}

// supersedes tells whether held, a Secret's token, is newer than next and of its tenant.
func supersedes(held []byte, next tokenInfo) bool {
	ti, err := parseToken(string(held), time.Now())
	return err == nil && ti.tenant == next.tenant && ti.newerThan(next)
}
