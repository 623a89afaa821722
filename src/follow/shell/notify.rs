//! systemd notifications (READY=1, STATUS=..., STOPPING=1) through the
//! sd-notify crate, from a thread of their own.

/// systemd notifications, sent from a thread of their own: the notify
/// socket is a blocking datagram socket, and a manager (or a test) that
/// does not read it must not stall the service. What cannot be queued is
/// dropped (a STATUS is superseded by the next one anyway).
pub(super) struct Notifier {
    tx: Option<std::sync::mpsc::SyncSender<String>>,
}

impl Notifier {
    pub(super) fn new(on: bool) -> Notifier {
        if !on || std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Notifier { tx: None };
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(8);
        let spawned = std::thread::Builder::new()
            .name("pdrestore-notify".into())
            .spawn(move || {
                for m in rx {
                    let state = match m.as_str() {
                        "READY=1" => sd_notify::NotifyState::Ready,
                        "STOPPING=1" => sd_notify::NotifyState::Stopping,
                        s => sd_notify::NotifyState::Status(s),
                    };
                    let _ = sd_notify::notify(&[state]);
                }
            });
        Notifier {
            tx: spawned.ok().map(|_| tx),
        }
    }

    pub(super) fn send(&self, m: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(m);
        }
    }
}
