// Package llm is Warden's model access: go-openai against any
// OpenAI-compatible endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, LocalAI),
// with provider errors translated into retryable or permanent failures, and a
// scripted model served over the same HTTP protocol for the demo and tests,
// so the real client path always runs.
package llm
