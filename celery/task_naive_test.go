package celery

import (
	"os"
	"os/exec"
	"testing"
	"time"
	_ "time/tzdata" // the child process's TZ without the system's zoneinfo

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	kombu "github.com/watermill-kombu/watermill-kombu"
)

// celeryV1NotUTC is the SQS body Celery 5.7 sends for
//
//	app.conf.task_protocol = 1; app.conf.enable_utc = False; app.conf.timezone = 'Asia/Kathmandu'
//	add.apply_async((2, 3), eta=datetime(2025, 3, 14, 15, 9, 26), expires=datetime(2025, 3, 15))
//
// (interop/gen_golden.py's pinned app, TZ=Asia/Kathmandu): naive eta and expires, "utc": false.
// Celery's worker (Request) reads them as 2025-03-14T15:09:26+00:00 (timestamp 1741964966)
// and 2025-03-15T00:00:00+00:00.
const celeryV1NotUTC = "eyJib2R5IjogImV5SjBZWE5ySWpvZ0luQnliMm91ZEdGemEzTXVZV1JrSWl3Z0ltbGtJam9nSWpBd01EQXdNREF3TFRBd01EQXROREF3TUMwNE1EQXdMVEF3TURBd01EQXdNREF3TVNJc0lDSmhjbWR6SWpvZ1d6SXNJRE5kTENBaWEzZGhjbWR6SWpvZ2UzMHNJQ0puY205MWNDSTZJRzUxYkd3c0lDSm5jbTkxY0Y5cGJtUmxlQ0k2SUc1MWJHd3NJQ0p5WlhSeWFXVnpJam9nTUN3Z0ltVjBZU0k2SUNJeU1ESTFMVEF6TFRFMFZERTFPakE1T2pJMklpd2dJbVY0Y0dseVpYTWlPaUFpTWpBeU5TMHdNeTB4TlZRd01Eb3dNRG93TUNJc0lDSjFkR01pT2lCbVlXeHpaU3dnSW1OaGJHeGlZV05yY3lJNklHNTFiR3dzSUNKbGNuSmlZV05yY3lJNklHNTFiR3dzSUNKMGFXMWxiR2x0YVhRaU9pQmJiblZzYkN3Z2JuVnNiRjBzSUNKMFlYTnJjMlYwSWpvZ2JuVnNiQ3dnSW1Ob2IzSmtJam9nYm5Wc2JIMD0iLCAiY29udGVudC1lbmNvZGluZyI6ICJ1dGYtOCIsICJjb250ZW50LXR5cGUiOiAiYXBwbGljYXRpb24vanNvbiIsICJoZWFkZXJzIjoge30sICJwcm9wZXJ0aWVzIjogeyJjb3JyZWxhdGlvbl9pZCI6ICIwMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEiLCAicmVwbHlfdG8iOiAiN2QxYzNhMGUtNWI3Zi0zYzU1LTlkMGMtMmExZjBlOWI4YzQxIiwgImRlbGl2ZXJ5X21vZGUiOiAyLCAiZXhwaXJhdGlvbiI6ICIzMTgzMzQ2NCIsICJkZWxpdmVyeV9pbmZvIjogeyJleGNoYW5nZSI6ICIiLCAicm91dGluZ19rZXkiOiAiY2VsZXJ5In0sICJwcmlvcml0eSI6IDAsICJib2R5X2VuY29kaW5nIjogImJhc2U2NCIsICJkZWxpdmVyeV90YWciOiAiMDAwMDAwMDAtMDAwMC00MDAwLTgwZDAtMDAwMDAwMDAwMDAxIn19"

// TestProtocol1NaiveTimesAreUTC reads a protocol 1 task Celery sent with enable_utc off, on a
// machine whose local zone is not UTC (a child process with TZ=Asia/Kathmandu): its naive
// eta and expires are UTC, as Celery's worker reads them, not local times.
func TestProtocol1NaiveTimesAreUTC(t *testing.T) {
	const child = "CELERY_TEST_NAIVE_TIMES_CHILD"
	if os.Getenv(child) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProtocol1NaiveTimesAreUTC$", "-test.count=1")
		cmd.Env = append(os.Environ(), child+"=1", "TZ=Asia/Kathmandu")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("with TZ=Asia/Kathmandu: %v\n%s", err, out)
		}
		return
	}
	if _, offset := time.Now().Zone(); offset != 5*3600+45*60 {
		t.Fatalf("the local zone has offset %d s, not Kathmandu's", offset)
	}
	msg, err := kombu.EnvelopeMarshaler{}.Unmarshal("celery", &types.Message{Body: aws.String(celeryV1NotUTC), MessageId: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	task, err := TaskFromMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if task.Protocol != 1 || task.UTC {
		t.Errorf("protocol %d, utc %v: want 1, false", task.Protocol, task.UTC)
	}
	if want := time.Unix(1741964966, 0); task.ETA == nil || !task.ETA.Equal(want) {
		t.Errorf("eta %v, want %v as Celery's worker", task.ETA, want.UTC())
	}
	if want := time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC); task.Expires == nil || !task.Expires.Equal(want) {
		t.Errorf("expires %v, want %v as Celery's worker", task.Expires, want)
	}
}
