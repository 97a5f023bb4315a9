//! The Functions custom-handler wire protocol (built in the Functions issue).
