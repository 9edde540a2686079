package kestrelcommand

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

func signedToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("test-key"))
	require.NoError(t, err)
	return s
}

func TestParseToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ti, err := parseToken(" "+signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": 1_799_990_000, "exp": 1_800_090_000})+"\n", now)
	require.NoError(t, err)
	assert.Equal(t, "acme", ti.tenant)
	assert.Equal(t, time.Unix(1_800_090_000, 0), ti.exp) //nolint:testifylint // ti.exp (the exp claim) is the actual value; the linter reads "exp" as "expected"
	assert.Equal(t, time.Unix(1_799_990_000, 0), ti.iat)
	// 80 % of iat→exp (100000 s) after iat.
	assert.Equal(t, time.Unix(1_799_990_000+80_000, 0), ti.renewAt(0.8))

	noIat, err := parseToken(signedToken(t, jwt.MapClaims{"tenant": "acme", "exp": 1_800_010_000}), now)
	require.NoError(t, err)
	assert.Equal(t, now.Add(5000*time.Second), noIat.renewAt(0.5), "without iat the lifetime starts at load time")

	noExp, err := parseToken(signedToken(t, jwt.MapClaims{"tenant": "acme"}), now)
	require.NoError(t, err)
	assert.True(t, noExp.renewAt(0.8).IsZero())

	expired, err := parseToken(signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": 1_700_000_000, "exp": 1_700_000_100}), now)
	require.NoError(t, err)
	assert.True(t, expired.renewAt(0.8).Before(now))

	for name, raw := range map[string]string{
		"empty":     "  ",
		"not a JWT": "abc.def",
		"no tenant": signedToken(t, jwt.MapClaims{"exp": 1_800_090_000}),
		"bad exp":   signedToken(t, jwt.MapClaims{"tenant": "acme", "exp": "soon"}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseToken(raw, now)
			require.Error(t, err)
		})
	}
	_, err = parseToken(signedToken(t, jwt.MapClaims{"sub": "x"}), now)
	require.ErrorContains(t, err, `no "tenant" claim`)
}

func TestTokenLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	now := time.Now().Unix()
	configured := signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": now - 100, "exp": now + 1000})
	newer := signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": now - 10, "exp": now + 2000})
	older := signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": now - 200, "exp": now + 500})
	otherTenant := signedToken(t, jwt.MapClaims{"tenant": "other", "iat": now, "exp": now + 5000})
	t.Setenv("KC_TEST_TOKEN", configured)

	for name, tc := range map[string]struct {
		cfg  TokenConfig
		want string
	}{
		"file":                        {TokenConfig{File: write("file", configured)}, configured},
		"env when file is missing":    {TokenConfig{File: filepath.Join(dir, "missing"), EnvVar: "KC_TEST_TOKEN"}, configured},
		"env when file has no tenant": {TokenConfig{File: write("bad", signedToken(t, jwt.MapClaims{})), EnvVar: "KC_TEST_TOKEN"}, configured},
		"newer persisted wins":        {TokenConfig{EnvVar: "KC_TEST_TOKEN", PersistFile: write("newer", newer)}, newer},
		"older persisted loses":       {TokenConfig{EnvVar: "KC_TEST_TOKEN", PersistFile: write("older", older)}, configured},
		"other tenant ignored":        {TokenConfig{EnvVar: "KC_TEST_TOKEN", PersistFile: write("other", otherTenant)}, configured},
		"broken persisted ignored":    {TokenConfig{EnvVar: "KC_TEST_TOKEN", PersistFile: write("broken", "garbage")}, configured},
		"missing persisted ignored":   {TokenConfig{EnvVar: "KC_TEST_TOKEN", PersistFile: filepath.Join(dir, "none")}, configured},
	} {
		t.Run(name, func(t *testing.T) {
			tm := newTokenManager(tc.cfg, zaptest.NewLogger(t), nil)
			require.NoError(t, tm.load(context.Background()))
			assert.Equal(t, tc.want, tm.current().raw)
			tok, err := tm.Token()
			require.NoError(t, err)
			assert.Equal(t, "Bearer", tok.Type())
			assert.Equal(t, tc.want, tok.AccessToken)
		})
	}

	tm := newTokenManager(TokenConfig{File: write("notenant", signedToken(t, jwt.MapClaims{})), EnvVar: "KC_TEST_UNSET_VAR"}, zaptest.NewLogger(t), nil)
	err := tm.load(context.Background())
	require.ErrorContains(t, err, `no "tenant" claim`)
	require.ErrorContains(t, err, "KC_TEST_UNSET_VAR: not set")
}

func TestWriteAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, writeAtomic(p, []byte("one"), 0o600))
	require.NoError(t, writeAtomic(p, []byte("two"), 0o600))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
	nested := filepath.Join(t.TempDir(), "state", "token")
	require.NoError(t, writeAtomic(nested, []byte("x"), 0o600))
	fi, err := os.Stat(nested)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	blocker := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	require.Error(t, writeAtomic(filepath.Join(blocker, "token"), []byte("x"), 0o600), "a file where the directory should be")
}

// A Secret's token is left alone only for a newer one of the same tenant (another replica's
// renewal); anything else is overwritten.
func TestSupersedes(t *testing.T) {
	now := time.Now().Unix()
	next, err := parseToken(signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": now, "exp": now + 1000}), time.Now())
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		held string
		want bool
	}{
		"newer of the tenant": {signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": now + 5, "exp": now + 900}), true},
		"older":               {signedToken(t, jwt.MapClaims{"tenant": "acme", "iat": now - 5, "exp": now + 2000}), false},
		"the same":            {next.raw, false},
		"newer, other tenant": {signedToken(t, jwt.MapClaims{"tenant": "other", "iat": now + 5, "exp": now + 2000}), false},
		"empty":               {"", false},
		"not a JWT":           {"onboarding", false},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, supersedes([]byte(tc.held), next))
		})
	}
}
