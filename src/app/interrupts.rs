//! Counting SIGINT and SIGTERM for the commands that stay in the foreground (`up`, `watch`):
//! the first stops gracefully, a second forces. Handled by tokio's signal handling on a thread of
//! its own, so the count can be read from anywhere.

use std::sync::atomic::{AtomicUsize, Ordering};

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// How many SIGINT and SIGTERM came since [`catch`].
pub fn count() -> usize {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// Counts SIGINT and SIGTERM from now on; returns once the handlers are in place (a Ctrl-C
/// before that would end the process). Later calls do nothing.
pub fn catch() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_handlers);
}

fn install_handlers() {
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_io().build() else { return };
        rt.block_on(async {
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                // The receiver waits until this is sent; it is gone only if it gave up.
                let _ = ready.send(());
                return;
            };
            // The receiver waits until this is sent; it is gone only if it gave up.
            let _ = ready.send(());
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                INTERRUPTS.fetch_add(1, Ordering::SeqCst);
            }
        });
    });
    // A thread that could not install the handlers has closed the channel, which ends the wait.
    let _ = installed.recv();
}

/// A flag set at the first interrupt from now on (for loops that poll a stop flag).
pub fn flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    catch();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let set = stop.clone();
    std::thread::spawn(move || {
        while count() == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        set.store(true, Ordering::SeqCst);
    });
    stop
}
