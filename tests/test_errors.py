"""The one line a user sees of an error raised by TensorFlow, Keras or their own code."""

from kerasrun.core.errors import first_line


def test_tensorflows_node_and_op_names_are_dropped():
    eager = ("{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
             "Invalid PNG. Failed to initialize decoder. [Op:DecodeImage] name: ")
    assert first_line(ValueError(eager)) == "Invalid PNG. Failed to initialize decoder."
    graph = ("Graph execution error:\n\nDetected at node decode defined at (most recent call last):\n"
             "  File \"train.py\", line 3\n\nUnknown image file format. One of JPEG, PNG, GIF, BMP required.\n"
             "\t [[{{node decode}}]] [Op:__inference_train_function_123]")
    assert first_line(ValueError(graph)) == "Unknown image file format. One of JPEG, PNG, GIF, BMP required."


def test_kerass_wrappers_of_an_error_in_a_layer_are_dropped():
    wrapped = ("Exception encountered when calling Dense.call().\n\n"
               "\x1b[1mInput 0 of layer \"dense\" is incompatible with the layer\x1b[0m\n\nArguments received: x")
    assert first_line(ValueError(wrapped)) == 'Input 0 of layer "dense" is incompatible with the layer'


def test_an_empty_message_is_the_errors_type():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("  \n  ")) == "ValueError"
