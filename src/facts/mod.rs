//! The facts the engine decides from: snapshot loaders (pure parsers over files' text);
//! live AWS adapters will sit here behind narrow traits.

pub mod iam_snapshot;
