//! Azure Storage plumbing (built in the Azure Storage issue).
