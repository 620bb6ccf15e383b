use waypost_shield::*;
fn main() {
    let a = load_tsv("/work/shared/data/smishing-labels/smishing_labels.tsv").unwrap();
    let b = load_tsv("/work/shared/data/sms-spam-collection/sms_spam_collection.tsv").unwrap();
    let (u, _) = dedup(a.into_iter().chain(b));
    let folds = kfold(&u, 5, 42);
    let test: Vec<Example> = folds[0].iter().map(|&i| u[i].clone()).collect();
    let train_set: Vec<Example> = (0..u.len()).filter(|i| !folds[0].contains(i)).map(|i| u[i].clone()).collect();
    let m = train(&train_set, &TrainConfig::default(), &|_, _| {});
    let s = Shield::new(m, Lists::embedded());
    for e in &test {
        let v = s.scan(&ScanInput::text(e.text.clone()));
        if v.label.is_positive() != e.label.is_positive() {
            println!("{} -> {} {:.2} | {}", e.label, v.label, v.score, e.text);
        }
    }
}
