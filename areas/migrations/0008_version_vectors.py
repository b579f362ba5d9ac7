from django.db import migrations, models

# Each path's last change becomes its first version vector: the best an existing index
# knows (areas.index.versions packs an item as a 32-byte origin and an 8-byte number).
SEED = (
    "UPDATE areas_entry SET version = change_origin || int8send(change_seq)"
    " WHERE change_seq > 0 AND length(change_origin) = 32;"
    " UPDATE areas_entry SET version = origin || int8send(1::bigint)"
    " WHERE change_seq = 0 AND length(origin) = 32;"
    " UPDATE areas_historyevent SET version = origin || int8send(origin_seq)"
    " WHERE length(origin) = 32;"
    " UPDATE areas_historyevent SET old_version = version WHERE kind = 'rename';"
)


class Migration(migrations.Migration):
    dependencies = [("areas", "0007_consensusrun_queued_at_worker_pid")]

    operations = [
        migrations.AddField(
            model_name="entry",
            name="version",
            field=models.BinaryField(db_default=b"", default=b""),
        ),
        migrations.AddField(
            model_name="entry",
            name="known",
            field=models.BinaryField(db_default=b"", default=b""),
        ),
        migrations.AddField(
            model_name="entry",
            name="deleted_version",
            field=models.BinaryField(db_default=b"", default=b""),
        ),
        migrations.AddField(
            model_name="entry",
            name="stamp",
            field=models.BinaryField(db_default=b"", default=b""),
        ),
        migrations.AddField(
            model_name="entry",
            name="moved",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="moved",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="version",
            field=models.BinaryField(null=True),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="old_version",
            field=models.BinaryField(null=True),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="base_version",
            field=models.BinaryField(null=True),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="stamp",
            field=models.BinaryField(null=True),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="old_stamp",
            field=models.BinaryField(null=True),
        ),
        migrations.RunSQL(SEED, migrations.RunSQL.noop),
        migrations.RemoveField(model_name="entry", name="change_origin"),
        migrations.RemoveField(model_name="entry", name="change_seq"),
        migrations.RemoveField(model_name="entry", name="moved_to"),
        migrations.RemoveField(model_name="entry", name="base_hash"),
        migrations.RemoveField(model_name="historyevent", name="also"),
        migrations.DeleteModel(name="SeenChange"),
        migrations.DeleteModel(name="SeenPrefix"),
    ]
