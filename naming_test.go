package kombu

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// kombuNameCase is one entry of testdata/kombu_names.json, as Kombu's SQS channel answered it
// (see interop/gen_kombu_names.py).
type kombuNameCase struct {
	Prefix        string `json:"prefix"`
	Name          string `json:"name"`
	Entity        string `json:"entity"`
	Canonical     string `json:"canonical"`
	NameFIFO      bool   `json:"name_fifo"`
	CanonicalFIFO bool   `json:"canonical_fifo"`
}

type kombuNames struct {
	Generator    string          `json:"generator"`
	KombuVersion string          `json:"kombu_version"`
	Cases        []kombuNameCase `json:"cases"`
}

func loadKombuNames(t *testing.T, data []byte) kombuNames {
	t.Helper()
	var names kombuNames
	if err := json.Unmarshal(data, &names); err != nil {
		t.Fatalf("kombu names: %v", err)
	}
	if len(names.Cases) < 100 {
		t.Fatalf("kombu names: only %d cases", len(names.Cases))
	}
	return names
}

// TestKombuNames checks EntityName, CanonicalQueueName and IsFIFOQueue against the names
// Kombu's own SQS channel produced.
func TestKombuNames(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "kombu_names.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := loadKombuNames(t, data)
	t.Logf("%d names from Kombu %s", len(names.Cases), names.KombuVersion)
	for _, c := range names.Cases {
		if got := entityName(c.Name); got != c.Entity {
			t.Errorf("EntityName(%q) = %q, Kombu: %q", c.Name, got, c.Entity)
		}
		if got := CanonicalQueueName(c.Prefix, c.Name); got != c.Canonical {
			t.Errorf("CanonicalQueueName(%q, %q) = %q, Kombu: %q", c.Prefix, c.Name, got, c.Canonical)
		}
		if got := isFIFOQueue(c.Name); got != c.NameFIFO {
			t.Errorf("IsFIFOQueue(%q) = %v, Kombu: %v", c.Name, got, c.NameFIFO)
		}
		if got := isFIFOQueue(c.Canonical); got != c.CanonicalFIFO {
			t.Errorf("IsFIFOQueue(%q) = %v, Kombu: %v", c.Canonical, got, c.CanonicalFIFO)
		}
	}
}

// TestKombuNamesSpotChecks pins a few well-known names, so that a regenerated file that went
// wrong does not go unnoticed.
func TestKombuNamesSpotChecks(t *testing.T) {
	cases := []struct{ prefix, name, want string }{
		{"", "celery", "celery"},
		{"", "celery.pidbox", "celery-pidbox"},
		{"", "a.b:c@d.fifo", "a-b_c_d.fifo"},
		{"dev-", "my.q", "dev-my-q"},
		{"dev.", "my.q.fifo", "dev-my-q.fifo"},
		{"", "queue.fifo.fifo", "queue-fifo.fifo"},
		{"", "café.au:lait", "café-au_lait"},
	}
	for _, c := range cases {
		if got := CanonicalQueueName(c.prefix, c.name); got != c.want {
			t.Errorf("CanonicalQueueName(%q, %q) = %q, want %q", c.prefix, c.name, got, c.want)
		}
	}
	// The prefix can complete the suffix: Kombu then treats the queue as FIFO.
	if !isFIFOQueue(CanonicalQueueName("x.fi", "fo")) {
		t.Error(`"x.fi" + "fo" must name a FIFO queue`)
	}
}

// TestKombuNamesFileIsCurrent runs the generator with the pinned Kombu and compares its output
// with testdata/kombu_names.json.
func TestKombuNamesFileIsCurrent(t *testing.T) {
	python := testenv.Python(t)
	root := testenv.RepoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(root, "interop", "gen_kombu_names.py"), "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gen_kombu_names.py: %v\n%s", err, stderr.String())
	}
	file, err := os.ReadFile(filepath.Join(root, "testdata", "kombu_names.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, file) {
		fresh, stored := loadKombuNames(t, out), loadKombuNames(t, file)
		t.Fatalf("testdata/kombu_names.json is stale (stored: %d cases from Kombu %s; fresh: %d cases from Kombu %s); "+
			"regenerate it with .cache/venv/bin/python interop/gen_kombu_names.py",
			len(stored.Cases), stored.KombuVersion, len(fresh.Cases), fresh.KombuVersion)
	}
}
