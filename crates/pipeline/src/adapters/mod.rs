//! Adapters: implementations of the ports in [`crate::ports`]. Each lives in
//! its own folder and keeps its types behind the port; all of them pass the
//! tests in [`crate::contract`].

pub mod embedded;
