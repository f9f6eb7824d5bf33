package redact_test

import (
	"encoding/json"
	"fmt"
	"log"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/redact"
)

func ExampleRedactor_Redact() {
	r, err := redact.FromConfig(json.RawMessage(`{"rules":[{"name":"employee_id","pattern":"\\bEMP-[0-9]{6}\\b"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	e, err := r.Redact(warden.AuditEvent{
		Args:    json.RawMessage(`{"url":"https://bot:hunter2@api.example.com","password":"s3cret"}`),
		Message: "mail jane@example.com about EMP-123456",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(e.Args))
	fmt.Println(e.Message)
	for _, x := range e.Redactions {
		fmt.Println(x.Field, x.Rule, x.Count)
	}
	// Output:
	// {"password":"[REDACTED:secret_key]","url":"https://bot:[REDACTED:url_password]@api.example.com"}
	// mail [REDACTED:email] about [REDACTED:employee_id]
	// args secret_key 1
	// args url_password 1
	// message email 1
	// message employee_id 1
}
