//! The in-memory S3 stand-in: pages, prefixes and S3's errors.

use cai_asl::{MemoryS3, S3Access, S3Failure};

#[test]
fn listing_pages_through_a_prefix_in_key_order() {
    let s3 = MemoryS3::with_page_size(2);
    for key in ["b/3", "a/1", "b/1", "b/2", "c", "b/4", "b/5"] {
        s3.insert("bk", key, key.as_bytes());
    }
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = s3.list_objects_v2("bk", "b/", token.as_deref()).unwrap();
        pages.push(
            page.objects
                .iter()
                .map(|o| o.key.clone())
                .collect::<Vec<_>>(),
        );
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, [vec!["b/1", "b/2"], vec!["b/3", "b/4"], vec!["b/5"]]);
    let all = s3.list_objects_v2("bk", "", None).unwrap();
    assert_eq!(all.objects.len(), 2);
    assert!(all.next_continuation_token.is_some());
    let o = &all.objects[0];
    assert_eq!(
        (o.key.as_str(), o.size, o.storage_class.as_str()),
        ("a/1", 3, "STANDARD")
    );
    assert_eq!(o.etag.len(), 34);
    // Same content, same ETag.
    s3.insert("bk", "copy", "a/1");
    let copy = s3.list_objects_v2("bk", "copy", None).unwrap();
    assert_eq!(copy.objects[0].etag, o.etag);
}

#[test]
fn s3_errors() {
    let s3 = MemoryS3::new();
    assert!(matches!(
        s3.get_object("none", "k", 10),
        Err(S3Failure::NoSuchBucket { .. })
    ));
    assert!(matches!(
        s3.put_object("none", "k", vec![1]),
        Err(S3Failure::NoSuchBucket { .. })
    ));
    s3.create_bucket("bk");
    assert!(matches!(
        s3.get_object("bk", "k", 10),
        Err(S3Failure::NoSuchKey { .. })
    ));
    s3.put_object("bk", "k", vec![1, 2, 3]).unwrap();
    assert_eq!(s3.get_object("bk", "k", 3).unwrap(), vec![1, 2, 3]);
    assert_eq!(
        s3.get_object("bk", "k", 2),
        Err(S3Failure::TooLarge { size: 3, max: 2 })
    );
    assert_eq!(s3.keys("bk"), ["k"]);
    assert_eq!(s3.object("bk", "k"), Some(vec![1, 2, 3]));
    let text = S3Failure::NoSuchKey {
        bucket: "bk".into(),
        key: "x".into(),
    }
    .to_string();
    assert!(text.contains("bk") && text.contains('x'), "{text}");
}
