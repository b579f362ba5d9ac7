import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("areas", "0005_per_file_tables_without_constraints")]

    operations = [
        migrations.AddField(
            model_name="entry",
            name="change_origin",
            field=models.BinaryField(db_default=b"", default=b"", max_length=32),
        ),
        migrations.AddField(
            model_name="entry",
            name="change_seq",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="entry",
            name="moved_to",
            field=models.CharField(blank=True, db_default="", default="", max_length=4096),
        ),
        migrations.AddField(
            model_name="entry",
            name="base_hash",
            field=models.BinaryField(max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="historyevent",
            name="also",
            field=models.BinaryField(null=True),
        ),
        migrations.CreateModel(
            name="SeenPrefix",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("origin", models.BinaryField(max_length=32)),
                ("upto", models.BigIntegerField()),
                (
                    "area",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="areas.area",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("area", "origin"), name="seenprefix")
                ],
            },
        ),
    ]
