// Package docscheck finds the code blocks of the project's Markdown documentation so that a
// test can compile and run them as a reader would copy them.
package docscheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Block is one fenced code block.
type Block struct {
	File string // relative to the repository root
	Line int    // of the opening fence
	Lang string // the fence's info string: go, python, sh...
	Code string
}

// Name identifies the block in messages, as file:line.
func (b Block) Name() string { return b.File + ":" + itoa(b.Line) }

func itoa(n int) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(buf[i:])
		}
	}
}

// Files returns README.md and docs/*.md under root, relative to it.
func Files(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		files = append(files, rel)
	}
	sort.Strings(files[1:])
	return files, nil
}

// Blocks returns the fenced code blocks (``` or ~~~) of a Markdown file.
func Blocks(root, file string) ([]Block, error) {
	f, err := os.Open(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		blocks []Block
		cur    *Block
		fence  string
		code   strings.Builder
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if cur == nil {
			for _, fc := range []string{"```", "~~~"} {
				if strings.HasPrefix(trimmed, fc) {
					fence = fc
					cur = &Block{File: file, Line: line, Lang: strings.Fields(trimmed[len(fc):] + " x")[0]}
					if cur.Lang == "x" {
						cur.Lang = ""
					}
					code.Reset()
				}
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.TrimLeft(trimmed, fence[:1]) == "" {
			cur.Code = code.String()
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		code.WriteString(text)
		code.WriteByte('\n')
	}
	return blocks, sc.Err()
}

// brokerURL matches an SQS broker URL with a host: sqs://[key:secret]@host:port.
var brokerURL = regexp.MustCompile(`sqs://[^\s"'` + "`" + `@/]*@[A-Za-z0-9.\-]+:[0-9]+`)

// LocalBrokerURLs returns the SQS broker URLs of a file that point to a broker on this
// machine (host 127.0.0.1 or localhost) and that are meant to be used as they are: every one
// in a code block, and those with host 127.0.0.1 in the text. URLs that only illustrate how a
// URL is parsed (sqs://@localhost:9324 in a table) are not among them.
func LocalBrokerURLs(root, file string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return nil, err
	}
	blocks, err := Blocks(root, file)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var urls []string
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	for _, b := range blocks {
		for _, u := range brokerURL.FindAllString(b.Code, -1) {
			if isLocal(u) {
				add(u)
			}
		}
	}
	for _, u := range brokerURL.FindAllString(string(data), -1) {
		if strings.Contains(u, "@127.0.0.1:") {
			add(u)
		}
	}
	return urls, nil
}

func isLocal(u string) bool {
	return strings.Contains(u, "@127.0.0.1:") || strings.Contains(u, "@localhost:")
}
