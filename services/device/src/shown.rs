//! The mails a device has shown, by the URL that names each: a mail
//! notified twice (a server that lost its outbox, with the idempotency
//! keys that would have caught a retried delivery, sends it again in a
//! new generation) is acked but shown once, as a mail app lists a message
//! once however often it hears of it.

use std::collections::{HashSet, VecDeque};

/// The last `capacity` mail URLs shown, oldest forgotten first.
#[derive(Debug, Clone)]
pub struct Shown {
    capacity: usize,
    order: VecDeque<String>,
    urls: HashSet<String>,
}

impl Shown {
    /// Remembers at most `capacity` mails (0: none, every notification
    /// is shown).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::new(),
            urls: HashSet::new(),
        }
    }

    /// Whether the mail at `url` is new to the device; remembers it. A
    /// notification without a URL (withheld by the content level, or a
    /// mailbox sync) names no mail and is always new.
    pub fn first_time(&mut self, url: Option<&str>) -> bool {
        let Some(url) = url.filter(|u| !u.is_empty()) else {
            return true;
        };
        if self.capacity == 0 {
            return true;
        }
        if self.urls.contains(url) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.urls.remove(&oldest);
        }
        self.order.push_back(url.to_owned());
        self.urls.insert(url.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_is_shown_once_until_forgotten() {
        let mut shown = Shown::new(2);
        assert!(shown.first_time(Some("/m/1")));
        assert!(!shown.first_time(Some("/m/1")));
        assert!(shown.first_time(Some("/m/2")));
        assert!(shown.first_time(Some("/m/3")));
        // The oldest went to make room.
        assert!(shown.first_time(Some("/m/1")));
        assert!(!shown.first_time(Some("/m/3")));
    }

    #[test]
    fn a_notification_naming_no_mail_is_always_shown() {
        let mut shown = Shown::new(2);
        assert!(shown.first_time(None));
        assert!(shown.first_time(None));
        assert!(shown.first_time(Some("")));
        assert!(shown.first_time(Some("")));
        let mut off = Shown::new(0);
        assert!(off.first_time(Some("/m/1")));
        assert!(off.first_time(Some("/m/1")));
    }
}
