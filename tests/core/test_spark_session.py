"""Finding Java for Spark and reading --spark-conf, without starting Spark."""

from __future__ import annotations

import pytest

from notellm import spark_session as ss


def test_java_home_from_env_path_or_jvm_dir(tmp_path, monkeypatch):
    jdk = tmp_path / "jdk"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "bin" / "java").write_text("#!/bin/sh\n")
    (jdk / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(jdk))
    assert ss.find_java_home() == str(jdk)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "gone"))  # stale JAVA_HOME: fall back to java on PATH
    monkeypatch.setenv("PATH", str(jdk / "bin"))
    assert ss.find_java_home() == str(jdk.resolve())


def test_no_java_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ss.JavaNotFoundError, match="openjdk-17-jre-headless"):
        ss.find_java_home(tmp_path / "no-jvm-here")
    jdk = tmp_path / "jvm" / "java-17" / "bin"
    jdk.mkdir(parents=True)
    (jdk / "java").write_text("")
    assert ss.find_java_home(tmp_path / "jvm") == str(tmp_path / "jvm" / "java-17")


def test_spark_conf_and_local_defaults():
    assert ss.parse_conf(["spark.executor.memory=8g", " a = b=c "]) == {"spark.executor.memory": "8g", "a": "b=c"}
    with pytest.raises(ValueError, match="key=value"):
        ss.parse_conf(["spark.executor.memory"])
    assert ss._local_defaults("local[3]") == {"spark.sql.shuffle.partitions": "12"}
    assert ss._local_defaults("yarn") == {}
