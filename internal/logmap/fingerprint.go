package logmap

import (
	"hash/maphash"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fingerprintSeed is fixed for the process: fingerprints are compared within one process only.
var fingerprintSeed = maphash.MakeSeed()

var fingerprintOpts = proto.MarshalOptions{Deterministic: true}

// Fingerprint returns a hash of the cloud.v1 message that lr maps to, leaving out what
// says when and how it was seen rather than what was seen: the record's time (the
// messages' status_timestamp and condition_timestamp) and the action. Two records with
// the same fingerprint give the cloud the same state; a source that remembers the
// fingerprint it last emitted per object can skip records that would tell the cloud
// nothing new. ok is false when lr maps to no message (it would be dropped).
func Fingerprint(lr plog.LogRecord) (sum uint64, ok bool) {
	b := batch{now: time.Now, total: 1, noRecordTime: true}
	rec := record{res: noAttrs, attrs: lr.Attributes(), lr: lr}
	if b.one(&rec) < 0 || len(b.res.Items) != 1 {
		return 0, false
	}
	m := b.res.Items[0].Payload.ProtoReflect()
	if f := m.Descriptor().Fields().ByName("action"); f != nil && f.Kind() == protoreflect.EnumKind {
		m.Clear(f)
	}
	data, err := fingerprintOpts.Marshal(m.Interface())
	if err != nil {
		return 0, false
	}
	return maphash.Bytes(fingerprintSeed, data), true
}

// FingerprintKey hashes the identity of an object's records of one event name (e.g. a
// pod's UID) into a map key: smaller than the strings it stands for.
func FingerprintKey(eventName, uid string) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	_, _ = h.WriteString(eventName)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(uid)
	return h.Sum64()
}
