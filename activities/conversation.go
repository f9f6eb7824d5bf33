// Conversations by reference (claim check) for Plan: how much of a
// conversation travels inline, storing and loading its chunks through
// Payloads, and the worker's cache of loaded conversations.

package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/bounded"
)

// inlineConversationLimit is how many bytes of new messages the workflow
// may carry inline to Plan before Plan stores them by reference (claim
// check). The limit bounds what each Plan input adds to the history.
const inlineConversationLimit = 2 << 10

// inlineSize is about what msgs weigh in a Plan input.
func inlineSize(msgs []warden.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Content) + len(m.ContentRef) + 64
		for _, c := range m.ToolCalls {
			n += len(c.ID) + len(c.Name) + len(c.Args) + 32
		}
	}
	return n
}

// conversationChunk is one stored piece of a conversation: the messages
// that follow its parent.
type conversationChunk struct {
	Parent   string           `json:"parent,omitempty"`
	Messages []warden.Message `json:"messages"`
}

// maxCachedConversations bounds the worker's conversation cache; when it
// is full, the least recently used conversation is forgotten (and loaded
// from Payloads again if a run asks for it).
const maxCachedConversations = 512

// storeConversation stores full (the conversation that follows parent's,
// plus parent's) as a chunk pointing at parent, and caches it.
func (a *Activities) storeConversation(ctx context.Context, parent string, full []warden.Message) (string, error) {
	prior := 0
	if parent != "" {
		p, err := a.conversation(ctx, parent)
		if err != nil {
			return "", err
		}
		prior = len(p)
	}
	b, err := json.Marshal(conversationChunk{Parent: parent, Messages: full[prior:]})
	if err != nil {
		return "", fmt.Errorf("store conversation: %w", err)
	}
	ref, err := a.Payloads.PutPayload(ctx, b)
	if err != nil {
		return "", fmt.Errorf("store conversation: %w", err)
	}
	a.cacheConversation(ref, full)
	return ref, nil
}

// conversation loads a stored conversation, following its chunks back to
// the first (or to one the cache holds).
func (a *Activities) conversation(ctx context.Context, ref string) ([]warden.Message, error) {
	if a.Payloads == nil {
		return nil, errors.New("a conversation reference needs a payload store, and none is configured")
	}
	var chunks []conversationChunk
	var base []warden.Message
	for r := ref; r != ""; {
		if c, ok := a.cachedConversation(r); ok {
			base = c
			break
		}
		b, err := a.Payloads.Payload(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("load conversation: %w", err)
		}
		var c conversationChunk
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("load conversation %s: %w", r, err)
		}
		chunks = append(chunks, c)
		r = c.Parent
	}
	full := slices.Clone(base)
	for i := len(chunks) - 1; i >= 0; i-- {
		full = append(full, chunks[i].Messages...)
	}
	a.cacheConversation(ref, full)
	return full, nil
}

// conversations is the cache of loaded conversations by reference, made
// on first use.
func (a *Activities) conversations() *bounded.Map[string, []warden.Message] {
	a.convOnce.Do(func() { a.convCache = bounded.New[string, []warden.Message](maxCachedConversations) })
	return a.convCache
}

func (a *Activities) cachedConversation(ref string) ([]warden.Message, bool) {
	return a.conversations().Get(ref)
}

func (a *Activities) cacheConversation(ref string, msgs []warden.Message) {
	a.conversations().Put(ref, msgs)
}
