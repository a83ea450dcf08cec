//! Checks on chat logs, shared by the virtual-time and real-socket chat
//! tests.

/// Asserts that `log` (sender, text), in delivery order, holds each sender's
/// own messages `"{name}#0"`, `"{name}#1"`, … complete and in send order,
/// for `total` messages sent round-robin by `names`, the first name first.
pub fn assert_each_sender_in_order(log: &[(String, String)], names: &[&str], total: usize) {
    for (k, name) in names.iter().enumerate() {
        let mine: Vec<&str> = log
            .iter()
            .filter(|(from, _)| from == name)
            .map(|(_, text)| text.as_str())
            .collect();
        let count = total / names.len() + usize::from(k < total % names.len());
        let want: Vec<String> = (0..count).map(|i| format!("{name}#{i}")).collect();
        assert_eq!(mine, want, "{name}'s messages in send order");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn interleaved_senders_in_order_pass() {
        let l = log(&[("a", "a#0"), ("b", "b#0"), ("a", "a#1")]);
        assert_each_sender_in_order(&l, &["a", "b"], 3);
    }

    #[test]
    #[should_panic(expected = "a's messages in send order")]
    fn a_swap_within_one_sender_fails() {
        let l = log(&[("a", "a#1"), ("b", "b#0"), ("a", "a#0")]);
        assert_each_sender_in_order(&l, &["a", "b"], 3);
    }
}
