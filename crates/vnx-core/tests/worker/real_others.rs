//! Codex 0.169 and Gemini CLI 0.61 end to end.
