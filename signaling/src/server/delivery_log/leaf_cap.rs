//! The cap on the size of a leaf node entering a group's ratchet tree, and
//! the cheap check of a commit against it.
//!
//! Every Welcome carries the whole tree, so one oversized leaf makes every
//! later Welcome larger, and a few of them push it over the Welcome cap:
//! nobody could join any more. Checking a commit with a large leaf is also
//! costly (openmls hashes and stores the tree on every commit), and the
//! check runs under the room's lock. So the leaves a commit would put in
//! the tree (each Add's KeyPackage leaf and the committer's new leaf in
//! the update path) are measured on the wire bytes, before openmls
//! processes the commit.
//!
//! openmls exposes neither a commit's proposals nor its path before
//! processing, so this walks the encoding itself (RFC 9420 §6, §7.2,
//! §12.1, §12.4): only lengths are read, nothing is copied or verified.
//! The full parse has already succeeded when this runs; anything this walk
//! does not follow is refused.

use super::Invalid;

/// The largest leaf node (its TLS encoding) a commit, KeyPackage or
/// GroupInfo may put in a group's tree.
///
/// The client SDK's leaves are 171 bytes in a KeyPackage and 190 in an
/// update path for a 5-byte identity, 441 at most (identities are capped
/// at 256 bytes, `MAX_CLAIM_BYTES`): a basic credential, default
/// capabilities, no extension. The cap leaves 4.6 times that, room for a
/// few extensions or a short X.509 chain, while keeping what oversized
/// leaves can add to every Welcome small (see `docs/operations.md`,
/// "Limits"). It is well inside the KeyPackage cap (a KeyPackage is its
/// leaf plus an init key, extensions and a signature, about 120 bytes
/// more), so the KeyPackage cap alone would let through leaves the tree
/// refuses: KeyPackages are checked against this cap too, or a commit
/// adding one would be refused and the joiner never added.
pub const MAX_LEAF_NODE_BYTES: usize = 2048;

/// The refusal of a leaf over [`MAX_LEAF_NODE_BYTES`] (the text is sent to
/// the client).
pub const LEAF_TOO_LARGE: Invalid = Invalid("a leaf node is larger than 2048 bytes");

/// The commit could not be walked (a proposal type this walk does not
/// follow, or bytes it does not understand).
const UNWALKED: Invalid = Invalid("a commit may only add and remove members");
const MALFORMED: Invalid = Invalid("not a valid commit");

/// `MLSMessage.version`: mls10.
const MLS10: u16 = 1;
/// `WireFormat::mls_public_message`.
const PUBLIC_MESSAGE: u16 = 1;
/// `ContentType::commit`.
const COMMIT: u8 = 3;

/// A reader over TLS-encoded bytes, as RFC 9420 §2.1 encodes them.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Invalid> {
        if self.0.len() < n {
            return Err(MALFORMED);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Invalid> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Invalid> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A variable-size vector's length (§2.1.2: 1, 2 or 4 bytes, the top
    /// two bits of the first saying which).
    fn varint(&mut self) -> Result<usize, Invalid> {
        let first = self.u8()?;
        let (extra, value) = match first >> 6 {
            0 => (0, first & 0x3f),
            1 => (1, first & 0x3f),
            2 => (3, first & 0x3f),
            _ => return Err(MALFORMED),
        };
        let mut len = usize::from(value);
        for b in self.take(extra)? {
            len = (len << 8) | usize::from(*b);
        }
        Ok(len)
    }

    /// A variable-size vector (`opaque x<V>`, or any `T x<V>`), unread.
    fn vector(&mut self) -> Result<&'a [u8], Invalid> {
        let len = self.varint()?;
        self.take(len)
    }

    /// A `LeafNode` (§7.2); returns its encoded size.
    fn leaf_node(&mut self) -> Result<usize, Invalid> {
        let before = self.0.len();
        self.vector()?; // encryption_key
        self.vector()?; // signature_key
        self.u16()?; // credential_type
        self.vector()?; // the credential (basic: identity; x509: certificates)
        for _ in 0..5 {
            // capabilities: versions, cipher_suites, extensions,
            // proposals, credentials
            self.vector()?;
        }
        match self.u8()? {
            1 => {
                self.take(16)?; // key_package: lifetime (not_before, not_after)
            }
            2 => {} // update
            3 => {
                self.vector()?; // commit: parent_hash
            }
            _ => return Err(MALFORMED),
        }
        self.vector()?; // extensions
        self.vector()?; // signature
        Ok(before - self.0.len())
    }

    /// A `KeyPackage` (§10); returns its leaf's encoded size.
    fn key_package_leaf(&mut self) -> Result<usize, Invalid> {
        self.u16()?; // version
        self.u16()?; // cipher_suite
        self.vector()?; // init_key
        let leaf = self.leaf_node()?;
        self.vector()?; // extensions
        self.vector()?; // signature
        Ok(leaf)
    }

    /// One `ProposalOrRef` of a commit (§12.4); the size of the leaf it
    /// adds, if any. Only Add and Remove are followed (a commit may hold
    /// nothing else); references are skipped: the delivery service holds
    /// no proposal they could name, so processing refuses them.
    fn proposal_or_ref(&mut self) -> Result<Option<usize>, Invalid> {
        match self.u8()? {
            1 => match self.u16()? {
                1 => self.key_package_leaf().map(Some), // add
                3 => self.take(4).map(|_| None),        // remove: removed leaf
                _ => Err(UNWALKED),
            },
            2 => self.vector().map(|_| None), // reference
            _ => Err(MALFORMED),
        }
    }
}

/// The encoded sizes of the leaves a commit (an `MLSMessage` holding a
/// `PublicMessage` commit) would put in the tree: each Add's KeyPackage
/// leaf, then the update path's leaf, if any.
pub(super) fn commit_leaves(bytes: &[u8]) -> Result<Vec<usize>, Invalid> {
    let mut r = Reader(bytes);
    if r.u16()? != MLS10 || r.u16()? != PUBLIC_MESSAGE {
        return Err(MALFORMED);
    }
    r.vector()?; // group_id
    r.take(8)?; // epoch
    match r.u8()? {
        1 | 2 => {
            r.take(4)?; // member: leaf index; external: sender index
        }
        3 | 4 => {} // new_member_proposal, new_member_commit
        _ => return Err(MALFORMED),
    }
    r.vector()?; // authenticated_data
    if r.u8()? != COMMIT {
        return Err(MALFORMED);
    }
    let mut proposals = Reader(r.vector()?);
    let mut leaves = Vec::new();
    while !proposals.0.is_empty() {
        leaves.extend(proposals.proposal_or_ref()?);
    }
    match r.u8()? {
        0 => {}
        1 => leaves.push(r.leaf_node()?),
        _ => return Err(MALFORMED),
    }
    Ok(leaves)
}

/// Refuses a commit that would put a leaf over [`MAX_LEAF_NODE_BYTES`] in
/// the tree (or that cannot be walked).
pub(super) fn check_commit(bytes: &[u8]) -> Result<(), Invalid> {
    check_leaf(commit_leaves(bytes)?.into_iter().max().unwrap_or(0))
}

/// Refuses a leaf of `len` encoded bytes over [`MAX_LEAF_NODE_BYTES`].
pub(super) fn check_leaf(len: usize) -> Result<(), Invalid> {
    if len > MAX_LEAF_NODE_BYTES {
        Err(LEAF_TOO_LARGE)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
