package docscheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strings"
)

// Packages are the import paths a Go block may use without importing them, by the name it
// uses them under.
var Packages = map[string]string{
	"kombu":        "github.com/watermill-kombu/watermill-kombu",
	"celery":       "github.com/watermill-kombu/watermill-kombu/celery",
	"redisbackend": "github.com/watermill-kombu/watermill-kombu/celery/redisbackend",
	"kombumetrics": "github.com/watermill-kombu/watermill-kombu/kombumetrics",
	"watermill":    "github.com/ThreeDotsLabs/watermill",
	"message":      "github.com/ThreeDotsLabs/watermill/message",
	"middleware":   "github.com/ThreeDotsLabs/watermill/message/router/middleware",
	"aws":          "github.com/aws/aws-sdk-go-v2/aws",
	"sqs":          "github.com/aws/aws-sdk-go-v2/service/sqs",
	"prometheus":   "github.com/prometheus/client_golang/prometheus",
	"context":      "context",
	"errors":       "errors",
	"fmt":          "fmt",
	"json":         "encoding/json",
	"log":          "log",
	"os":           "os",
	"signal":       "os/signal",
	"strings":      "strings",
	"syscall":      "syscall",
	"time":         "time",
}

// Given are the names a Go block that is not a whole program may use without declaring
// them, those of the README's quick start: a context, the Watermill logger, the Config, the
// router, a Subscriber and a Publisher. Such a block is the body of a function that returns
// an error.
const Given = "ctx context.Context, logger watermill.LoggerAdapter, cfg kombu.Config, " +
	"router *message.Router, sub message.Subscriber, pub message.Publisher"

// Program turns a Go block into a main package. A block that starts with a package clause is
// a whole program and is returned as it is. Any other block is a sequence of statements: it
// becomes the body of a function that has the Given names, with the imports of Packages it
// refers to, and each variable it declares is marked as used (a snippet may end with a
// value the reader goes on to use).
func Program(code string) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(stripComments(code)), "package ") {
		return code, nil
	}
	body := "func snippet(" + Given + ") error {\n" + code + "\n}\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "snippet.go", "package main\n"+body, parser.SkipObjectResolution)
	if err != nil {
		return "", fmt.Errorf("not a sequence of Go statements: %w", err)
	}
	fn := f.Decls[0].(*ast.FuncDecl)
	var declared []string
	for _, st := range fn.Body.List {
		declared = append(declared, declaredBy(st)...)
	}
	used := map[string]bool{"context": true, "watermill": true, "kombu": true, "message": true}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				if _, known := Packages[id.Name]; known {
					used[id.Name] = true
				}
			}
		}
		return true
	})
	for _, d := range declared {
		delete(used, d) // a variable named like a package shadows it
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n")
	for _, n := range names {
		fmt.Fprintf(&b, "\t%s %q\n", n, Packages[n])
	}
	b.WriteString(")\n\nfunc main() {}\n\n")
	marks := ""
	for _, d := range declared {
		marks += "_ = " + d + "\n"
	}
	// The block is a scope of its own, so that it may declare the Given names again.
	b.WriteString("func snippet(" + Given + ") error {\n_, _, _, _, _, _ = ctx, logger, cfg, router, sub, pub\n{\n" + code + "\n" + marks + "}\nreturn nil\n}\n")
	return b.String(), nil
}

// declaredBy returns the variables a statement declares.
func declaredBy(st ast.Stmt) []string {
	var names []string
	switch s := st.(type) {
	case *ast.AssignStmt:
		if s.Tok == token.DEFINE {
			for _, l := range s.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
					names = append(names, id.Name)
				}
			}
		}
	case *ast.DeclStmt:
		if g, ok := s.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, spec := range g.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if id.Name != "_" {
						names = append(names, id.Name)
					}
				}
			}
		}
	}
	return names
}

func stripComments(code string) string {
	var out []string
	for _, line := range strings.Split(code, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "//") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
