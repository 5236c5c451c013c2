"""One function per user action (ingest checks, synth, train, import, export, evaluate, judge, promote):
the CLI, the web tabs and the API each call it. Takes the settings and the backends (`Components`);
imports assistant/, ingest/, finetune/ and eval/, never ui/."""
